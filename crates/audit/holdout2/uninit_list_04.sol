pragma solidity ^0.4.20;

contract Splitter {
    address public owner;
    uint256 public count;

    function Splitter() public {
        owner = msg.sender;
    }

    function remember(address a, address b) public {
        address[] recipients; // expect: other
        recipients.push(a);
        recipients.push(b);
        count = recipients.length;
    }
}
