pragma solidity ^0.7.0;

contract Shares {
    mapping(address => uint256) public balances;

    function buy() external payable {
        balances[msg.sender] += msg.value;
    }

    function destroy() external {
        require(balances[msg.sender] > 0, "holders only");
        selfdestruct(msg.sender); // expect: access-control
    }
}
