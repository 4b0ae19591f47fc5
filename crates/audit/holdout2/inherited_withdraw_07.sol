pragma solidity ^0.7.0;

contract Withdrawable {
    address payable public owner;

    constructor() {
        owner = msg.sender;
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        owner.transfer(address(this).balance);
    }
}

contract Vault is Withdrawable {
    receive() external payable {}
}
