pragma solidity ^0.6.0;

contract Closable {
    address payable public owner;

    constructor() public {
        owner = msg.sender;
    }

    receive() external payable {}

    function _checkOwner() internal view {
        require(msg.sender == owner, "owner");
    }

    function close() external {
        _checkOwner();
        selfdestruct(owner);
    }
}
